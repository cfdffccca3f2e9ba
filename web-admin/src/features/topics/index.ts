export { TopicList } from './components/TopicList';
export { TopicOverview } from './components/TopicOverview';
export { TopicStorage } from './components/TopicStorage';
export { usePartitionCount, useTopicStats } from './hooks';
export { topicKeys, type TopicRef } from './api';
