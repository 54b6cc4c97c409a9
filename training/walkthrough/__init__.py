"""The trainers' walkthrough in the README: its sample data and the script that builds it."""
