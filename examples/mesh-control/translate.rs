//! istiod's gateway translation, for the Istio objects slo-check's stack uses: Gateway,
//! VirtualService and DestinationRule, with Services, EndpointSlices and Pods, become
//! the Envoy listeners, routes, clusters and endpoints of one gateway proxy.
