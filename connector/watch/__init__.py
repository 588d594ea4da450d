"""`watch`: deliver new follows of many handles to a webhook, through a SQLite outbox."""
