export { ServiceAccounts } from './components/ServiceAccounts';
