"""Development and test process control: local mosquitto, influxd (and friends) on free ports."""
