"""The words and plumbing every layer shares: vocabulary, typed errors, the clock, pools.

Nothing here imports another part of Firebreak, so any layer may import it.
"""
