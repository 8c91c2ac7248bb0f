"""A tiny example product: a thermometer whose host-side driver speaks AT to a OneMO module over a
serial port, and a backend that reads the temperature through the OneNET API."""
