"""The reference target: websockets' own server and broadcast(), the floor the others are measured against."""
