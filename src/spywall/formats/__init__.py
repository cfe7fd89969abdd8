"""Format parsers: hostile bytes in, small typed structures out. No verdicts here."""
