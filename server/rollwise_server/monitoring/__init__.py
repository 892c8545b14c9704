"""Monitors of flags after their rollouts: decay and drift, checked by the controller."""
