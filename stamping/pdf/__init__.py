"""PDF: sample certificates, SM2/SM3 stamping (incremental update) and 验章."""
