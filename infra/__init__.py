"""Deployment infrastructure: the resources, the state machine definitions, and the template build. Nothing here
imports the local stack (local/ imports from here)."""
