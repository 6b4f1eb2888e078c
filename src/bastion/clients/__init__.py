"""What the agents people use need to reach Bastion: their configuration entries and files."""
