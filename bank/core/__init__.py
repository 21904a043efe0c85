"""The pure core: every protocol decision of the kit, as tables, with no I/O.

  messages.py     the vocabulary: states, messages, effects (read first)
  participant.py  one branch's view of one transaction (rules P1-P11)
  coordinator.py  one transaction at the coordinator (rules C1-C14)
  replica.py      a branch server's replication role: primary, replica, fenced (R1-R9)
  manager.py      a replicated branch's configuration, kept by the coordinator (M1-M6)

Servers only carry out the effects these tables return; the explorer runs the very
same objects in a simulator. Nothing here reads a clock, a file or a socket.
"""
