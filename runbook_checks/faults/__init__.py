"""Faults: one small frozen class per failure, injected on a stack and reverted by its handle."""
