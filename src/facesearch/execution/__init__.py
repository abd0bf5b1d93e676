"""Executors: where analysis jobs run (this process, local worker processes, later a cluster)."""
