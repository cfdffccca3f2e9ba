export { NamespacePermissions } from './components/NamespacePermissions';
export { TopicPermissions } from './components/TopicPermissions';
