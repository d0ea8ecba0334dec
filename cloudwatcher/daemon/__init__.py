"""The running daemon: watcher → ledger → upload workers → verification → status."""
