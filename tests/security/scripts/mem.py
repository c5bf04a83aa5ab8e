# Python memory bomb: grows a list of 1 MiB bytearrays forever; must end with MLE.
blocks = []
while True:
    blocks.append(bytearray(b"x" * (1 << 20)))
