"""The AI worker: takes jobs queued in SQL, calls the configured model endpoints, records results in SQL."""
