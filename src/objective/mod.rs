//! Pairs of views and the variational bounds on I(X,Z) and I(X,A).
