"""The program: `pairchat-server` (cli), the serving engine (front: granian, long-poll
parking, repeats, stop signals), the door processes, operator commands and the Flask
app's assembly.
"""
