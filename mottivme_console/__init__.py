"""The on-call console (`mottivme`)."""
