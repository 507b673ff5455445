"""Remote administration: Ed25519-signed commands (`signing`) and what they do (`commands`).

Transport-independent: the MQTT transport (edge.mqtt) receives and answers commands; this
package decides whether a command is genuine and carries it out.
"""
