"""One adapter per public dataset release, each yielding SafetySample records."""
