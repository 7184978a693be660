"""Camera probes: TCP connect, RTSP OPTIONS/DESCRIBE, HTTP snapshot."""
