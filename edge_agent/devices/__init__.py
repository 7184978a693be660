"""Device checks beyond the picture: ONVIF identity, clock and events of cameras."""
