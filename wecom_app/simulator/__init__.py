"""A WeCom (企业微信) server simulator: real HTTP, real errors, real limits, real callbacks.

org.py         departments, members, tags; load_org()      generate.py  generate_org()
state.py       SimConfig, SimState (tokens, records, faults) limits.py   Limits, RateWindows
directory.py   department/* and user/* APIs                 messages.py  message/send, cards
appchat.py     appchat/* APIs                               payloads.py  callback XML
delivery.py    encrypted callback POSTs with retries         events.py    CallbackDriver
inspection.py  the /_sim/ API                               server.py    app + SimulatorServer
"""

from __future__ import annotations

from wecom_app.simulator.delivery import Deliverer, DeliveryResult
from wecom_app.simulator.events import CallbackDriver, CallbackNotConfigured
from wecom_app.simulator.generate import generate_org
from wecom_app.simulator.limits import Limits
from wecom_app.simulator.org import Department, Member, Org, Tag, load_org
from wecom_app.simulator.server import SimulatorServer, create_simulator_app
from wecom_app.simulator.state import Channel, SimConfig, SimError, SimState

__all__ = [
    "CallbackDriver",
    "CallbackNotConfigured",
    "Channel",
    "Deliverer",
    "DeliveryResult",
    "Department",
    "Limits",
    "Member",
    "Org",
    "SimConfig",
    "SimError",
    "SimState",
    "SimulatorServer",
    "Tag",
    "create_simulator_app",
    "generate_org",
    "load_org",
]
