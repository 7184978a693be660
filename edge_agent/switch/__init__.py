"""The cabinet's PoE switch: port readings and power-cycles over SNMP."""
