"""``lmcore bench``: speed and start-up measured with the commands that give them."""
