"""The line dispatcher: recognise which program wrote a line and hand it to that parser.

Order of the checks, cheapest and least ambiguous first:

1. A line starting with ``{`` is a ``journalctl -o json`` entry.
2. A line with a syslog header (``syslog.split_header``) goes to the parser of its tag. The
   lines of Dovecot's own log file have no host, so their process name is taken for the tag
   when it has no brackets (``Dec 05 06:20:38 master: Info: ...``).
3. Lines without a syslog header: msmtpd's log file (``msmtpd[`` at a fixed column), Dovecot's
   log file lines whose process carries brackets (``submission(user)<pid><session>: ...``), then,
   for lines containing ``host=`` or ``socket=``, msmtp's stderr record and msmtp's log file, then
   Exim's main log. msmtp's log file comes before Exim's because a
   ``logfile_time_format`` of ``%Y-%m-%d %H:%M:%S`` gives Exim's timestamp layout, and only
   msmtp's record follows it with ``host=`` or ``socket=``.
"""

from __future__ import annotations

from collections.abc import Callable

from smtpdiag.logs import dovecot, exim, journal, msmtp, msmtpd, postfix, sasl_xoauth2, syslog
from smtpdiag.logs.model import NO_RESULT, LineResult, Source, SyslogRecord
from smtpdiag.logs.timestamps import TimeReader

_SASL_XOAUTH2 = "sasl-xoauth2"
_SASL_XOAUTH2_PREFIX = "sasl-xoauth2: "
_MSMTP_START = ("host=", "socket=")
_MSMTP_MARKS = (" host=", " socket=")
_JOURNAL_ONLY = LineResult(source=Source.JOURNAL)
_POSTFIX_ONLY = LineResult(source=Source.POSTFIX)
_ROUTES_SIZE = 10_000
"""Maximum number of programs in the dispatcher's parser cache; a full cache is emptied."""

Route = Callable[[SyslogRecord], LineResult | None]
"""A program's parser: the result of its record, None for programs without one."""


class LineParser:
    """Parses lines of any supported log format into events.

    ``msmtp_time_format`` is msmtp's ``logfile_time_format`` for lines of its own log file;
    None means ``none`` (records start with ``host=``).
    """

    def __init__(
        self, times: TimeReader, msmtp_time_format: str | None = msmtp.DEFAULT_TIME_FORMAT
    ) -> None:
        self._times = times
        self._msmtp_time_format = msmtp_time_format
        self._postfix = postfix.PostfixParser()
        self._dovecot = dovecot.DovecotParser()
        self._routes: dict[str, Route] = {}

    def parse(self, line: str) -> LineResult:
        """Return the events of one line, without its newline."""
        if line.startswith("{"):
            record = journal.record_from_json(line)
            if record is None:
                return NO_RESULT
            return self._route(record) or _JOURNAL_ONLY

        record = syslog.split_header(line, self._times)
        if record is None:
            return self._parse_without_header(line)
        return self._route(record) or NO_RESULT

    def _route(self, record: SyslogRecord) -> LineResult | None:
        """Return the result of the program's parser; None for a program without one."""
        program = record.program
        if program is None:
            return None
        route = self._routes.get(program)
        if route is None:
            route = self._route_for(program)
            if len(self._routes) >= _ROUTES_SIZE:
                self._routes.clear()
            self._routes[program] = route
        return route(record)

    def _route_for(self, program: str) -> Route:
        """Return the parser of a syslog tag; the dispatcher caches it per tag."""
        if program == "msmtp":
            return msmtp.parse_record
        if program == "msmtpd":
            return msmtpd.parse_record
        if postfix.is_postfix(program):
            return self._parse_postfix
        if postfix.is_postfix_program(program):
            return _postfix_only
        if exim.is_exim(program):
            return exim.parse_message
        if program == _SASL_XOAUTH2:
            return sasl_xoauth2.parse
        if program == dovecot.SYSLOG_TAG or dovecot.is_process(program):
            return self._dovecot.parse
        return _no_parser

    def _parse_postfix(self, record: SyslogRecord) -> LineResult:
        if record.message.startswith(_SASL_XOAUTH2_PREFIX):
            return sasl_xoauth2.parse(record)
        return self._postfix.parse(record)

    def _parse_without_header(self, line: str) -> LineResult:
        record = msmtpd.split_logfile(line, self._times)
        if record is not None:
            return msmtpd.parse_record(record)

        record = dovecot.split_logfile(line, self._times)
        if record is not None:
            return self._dovecot.parse(record) or NO_RESULT

        if _may_be_msmtp(line):
            record = msmtp.parse_stderr(line) or msmtp.split_logfile(
                line, self._times, self._msmtp_time_format
            )
            if record is not None:
                return msmtp.parse_record(record)

        record = exim.split_mainlog(line, self._times)
        if record is not None:
            return exim.parse_message(record)
        return NO_RESULT


def _no_parser(record: SyslogRecord) -> None:
    return None


def _postfix_only(record: SyslogRecord) -> LineResult:
    """Attribute a line of a Postfix program other than smtp and smtpd, which has no event."""
    return _POSTFIX_ONLY


def _may_be_msmtp(line: str) -> bool:
    return line.startswith(_MSMTP_START) or any(mark in line for mark in _MSMTP_MARKS)
