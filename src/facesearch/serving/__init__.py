"""What a long-running server needs beside HTTP: the model pool and the retention scheduler."""
