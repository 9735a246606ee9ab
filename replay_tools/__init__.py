"""replay_tools: time travel and audit over routilux job logs."""
