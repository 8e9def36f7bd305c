"""The org-chart mirror: full and incremental sync, departures, and the 部门+姓名 naming policy.

diff.py        plain records and the pure diff          sync.py         fetch → diff → apply
bulk.py        bulk apply of a full sync's diff         mirror.py       one-employee writes
incremental.py change_contact / subscribe handlers      naming.py       naming policy and report
queries.py     reads for the API, CLI and other features api.py / cli.py their thin adapters
"""
