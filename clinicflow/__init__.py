"""The command line (``clinicflow``), settings and wiring. The only package that reads the environment;
nothing imports it."""
