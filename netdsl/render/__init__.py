"""What people read: summary tables, pictures of a network and plots, from the checked IR and
its analysis (no torch)."""
