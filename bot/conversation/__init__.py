"""The conversation layer between the chat platforms (and `lore chat`) and the pure agent:
history in, the answer recorded and the turn remembered out."""
