"""Pure rules: money math, roles, state machines, the audit chain. Standard library only."""
