"""Clock skew: the local clock against NTP, HTTP ``Date`` headers and SMTP reply timestamps,
and the clock symptoms in identity provider errors and token claims."""
