export { SubscriptionsPanel } from './components/SubscriptionsPanel';
