export { NamespaceList } from './components/NamespaceList';
export { PoliciesPanel } from './components/PoliciesPanel';
export { namespaceKeys, fetchPolicies } from './api';
