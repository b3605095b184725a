"""Seals and stamping: SES seal data, the seal registry and audit log, OFD and PDF sealing, 验章
(verification) and the batch pipeline's domain logic. Never imports Airflow.

The cryptography it signs and verifies with lives below it, in ``gmpki``; settings and the database in
``kernel``. It enqueues filing records (``filing.outbox``) and nothing of ``filing`` imports it back.
"""
