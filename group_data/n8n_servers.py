"""Data of the group n8n_servers (the hosts that run the n8n stack). Defaults are in all.py;
put here what differs for these servers."""
