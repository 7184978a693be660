"""Recorder (NVR) adapters: what each camera's recorder kept, and its disks."""
