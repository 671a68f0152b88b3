//! The networks: backbones, relation head, relation encoder, Gumbel-softmax, critic.
