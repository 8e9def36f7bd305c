"""Notices that must be acknowledged.

audience.py  pure audience resolution         mirror.py   the mirror → plain Directory
pacing.py    per-member limit and ledger      delivery.py card batches through the outbox
service.py   create, preview, resend, cancel  status.py   counts and receipts
acks.py      acks, card clicks, departures    text.py     "收到", "收到 #12" text replies
link.py      OAuth acknowledgement page       api.py      /api/v1/notices
"""
