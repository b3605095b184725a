"""Seals and stamping: GM cryptography, PKI, key store, SES seal data, the seal registry and
audit log, OFD and PDF sealing, and 验章 (verification). Never imports Airflow."""
