"""Filing cases to the platform: cases, outbox, filer, adapters."""
