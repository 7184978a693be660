"""Simulators: fake cameras, uplinks and scenarios that stand in for a real province."""
