"""configpipe: event-driven configuration and release pipeline for AWS serverless systems."""
