"""The two WeCom callback channels: verification, decryption, inbox, dispatch and handlers."""
