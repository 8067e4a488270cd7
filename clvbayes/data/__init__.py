"""Data preparation: RFM summaries, validation, compression. Knows no model."""
