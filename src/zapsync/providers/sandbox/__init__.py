"""The built-in `sandbox` gateway, the simulated world in this process: the adapter
(`adapter.py`) and the world's values as zapsync's (`payloads.py`)."""
