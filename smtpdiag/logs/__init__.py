"""Mail log analysis: format parsers, a streaming reader, a follower and window aggregation.

One module per log source turns a line into a ``LogEvent`` (``model``): an AUTH attempt that
succeeded or failed, with the reason as a finding code, or the fate of a message after a
failure. ``dispatch`` recognises the source of each line. ``reader`` streams files in
constant memory, ``follow`` tails them across rotation, ``analysis`` aggregates events into
totals and time windows under ``options``, ``summary`` contains the result and its JSON form,
``findings`` judges it, and ``leaks`` finds secrets written to logs.
"""
