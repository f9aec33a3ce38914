"""DermLabel: a database-centric annotation platform for dermatology images."""
